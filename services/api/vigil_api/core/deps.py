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

from vigil_api.core.build_slots import BuildSlots
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


def get_build_slots(request: Request) -> BuildSlots:
    slots: BuildSlots = request.app.state.build_slots
    return slots


def hold_build_slot(request: Request) -> Iterator[None]:
    """A dataset version build's slot for the whole request (``core/build_slots.py``); FastAPI
    runs it on a worker thread, where waiting for one blocks nothing else."""
    with get_build_slots(request).held():
        yield


ClientsDep = Annotated[Clients, Depends(get_clients)]
SessionDep = Annotated[Session, Depends(get_db)]
BuildSlotsDep = Annotated[BuildSlots, Depends(get_build_slots)]
BUILD_SLOT = Depends(hold_build_slot)
"""A route's ``dependencies`` entry: it builds a dataset version in memory."""
