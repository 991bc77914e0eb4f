// Command compose-config resolves Compose files the way `docker compose config --format json`
// does, with the parser Docker Compose v2 is built on (github.com/compose-spec/compose-go/v2):
// interpolation (${VAR:?message} refusals included), merging of override files (!reset),
// normalisation and validation against the Compose specification. Vigil's tests read its output
// (tests/unit/test_compose.py) where no Docker engine or Compose plugin is installed.
//
//	compose-config [--env-file FILE]... [--profile NAME]... [--project-name NAME] \
//	    -f docker-compose.yml [-f override.yml]...
//
// It prints the resolved project as JSON on stdout, or the parser's error on stderr with status 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var composeFiles, envFiles, profiles files
	flag.Var(&composeFiles, "f", "a Compose file (repeat for overrides, in order)")
	flag.Var(&envFiles, "env-file", "an env file (default: .env beside the first Compose file, if any)")
	flag.Var(&profiles, "profile", "a profile to enable (repeat for several)")
	name := flag.String("project-name", "vigil", "the project name")
	flag.Parse()
	if len(composeFiles) == 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	out, err := resolve(composeFiles, envFiles, profiles, *name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compose-config:", err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}

func resolve(composeFiles, envFiles, profiles []string, name string) ([]byte, error) {
	options, err := cli.NewProjectOptions(
		composeFiles,
		cli.WithName(name),
		cli.WithWorkingDirectory(filepath.Dir(composeFiles[0])),
		cli.WithOsEnv,
		cli.WithEnvFiles(envFiles...),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return nil, err
	}
	return project.MarshalJSON()
}
