"""Clients built once in the lifespan, handed to routes through ``Annotated`` dependencies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from celery import Celery
from fastapi import Depends, Request
from minio import Minio
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from vigil_api.core.settings import ApiSettings
from vigil_api.domain.registry_stages import Publisher


@dataclass(frozen=True)
class Clients:
    settings: ApiSettings
    engine: Engine
    sessions: sessionmaker[Session]
    s3: Minio
    celery: Celery
    redis: Redis
    assignments: Publisher  # the Kafka producer of model assignments, built once


def get_clients(request: Request) -> Clients:
    clients: Clients = request.app.state.clients
    return clients


def get_db(clients: Annotated[Clients, Depends(get_clients)]) -> Iterator[Session]:
    with clients.sessions() as session:
        yield session


ClientsDep = Annotated[Clients, Depends(get_clients)]
SessionDep = Annotated[Session, Depends(get_db)]
