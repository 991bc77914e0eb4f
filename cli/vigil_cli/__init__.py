"""``vigil``: the operator's command line over the Vigil API (``vigil --help``).

It talks to the API only, over HTTP with an API key, like any other client: no service
package is imported, so it runs on a laptop with ``pip install 'vigil[cli]'``.
"""
