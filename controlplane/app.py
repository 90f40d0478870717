"""The control plane's wired dependencies: one object built from ``Settings``.

Services take what they need from here as keyword arguments (session, store, signer, clock);
nothing else holds global state. ``ControlPlane.run_db`` is how async code does blocking database
work: on a bounded thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from controlplane.auth.cache import CredentialCache
from controlplane.auth.policy import Principal
from controlplane.auth.services import authenticate
from controlplane.config import Settings
from controlplane.db import (
    make_engine,
    make_session_factory,
    retry_on_contention,
    transaction,
    utcnow,
)
from controlplane.fleet.desired_cache import DesiredStateCache
from controlplane.fleet.services import device_secret_matches
from controlplane.registry.signing import Signer
from controlplane.registry.store import FilesystemArtifactStore

T = TypeVar("T")

CREDENTIAL_CACHE_SIZE = 50_000  # ~10 MB at most; a fleet larger than this re-reads a few rows


@dataclass
class ControlPlane:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    store: FilesystemArtifactStore
    signer: Signer
    clock: Callable[[], dt.datetime] = utcnow
    executor: ThreadPoolExecutor = field(init=False)
    credentials: CredentialCache = field(init=False)
    desired_cache: DesiredStateCache = field(init=False)

    def __post_init__(self) -> None:
        self.credentials = CredentialCache(self.settings.auth_cache_seconds, CREDENTIAL_CACHE_SIZE)
        s = self.settings
        # Scaled out, memory may answer only while the Redis subscription hears every change:
        # it starts serving when the server's subscriber is in (``notify.RedisSubscriber``).
        self.desired_cache = DesiredStateCache(
            size=s.desired_cache_size, max_age=s.desired_cache_max_age_seconds,
            refresh=s.desired_state_refresh_seconds, serving=s.embedded)
        self.executor = ThreadPoolExecutor(
            max_workers=self.settings.db_pool_threads, thread_name_prefix="edgefleet-db"
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, create_key: bool = True) -> ControlPlane:
        """Wire the plane for ``settings``. ``create_key=False`` refuses to invent a signing key:
        a second replica or a worker must use the fleet's key, never a new one agents distrust.

        Raises SigningKeyError when the key is missing (and may not be created) or unusable.
        """
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # One connection per pool thread plus the odd caller outside it (startup, the last-seen
        # flush): a thread must never wait for a connection another thread holds.
        engine = make_engine(settings.db_url, pool_size=settings.db_pool_threads + 2)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            read_sessions=make_session_factory(engine, read_only=True),
            store=FilesystemArtifactStore(settings.artifact_dir),
            signer=Signer.load_or_create(
                settings.signing_key_path, settings.signing_public_key_path, create=create_key
            ),
        )

    def tx(self) -> AbstractContextManager[Session]:
        """A session in a write transaction: commits on success, rolls back on error."""
        return transaction(self.sessions)

    def read(self) -> AbstractContextManager[Session]:
        """A session in a read-only transaction (on SQLite it does not take the write lock)."""
        return transaction(self.read_sessions)

    def authenticate(self, session: Session, token: str) -> Principal:
        """The principal behind a bearer token (``auth.services.authenticate``, with the fleet's
        device check). Raises UnauthenticatedError."""
        return authenticate(session, token, now=self.clock(),
                            device_secret_matches=device_secret_matches)

    async def run_db(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` on the bounded database pool.

        ``fn`` must be all-or-nothing (its database work in one ``tx()``, side effects only after
        commit): when a concurrent transaction wins (``is_contention``) it is run again, up to
        ``db.ATTEMPTS`` times in all.
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(retry_on_contention, functools.partial(fn, *args, **kwargs))
        return await loop.run_in_executor(self.executor, call)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.engine.dispose()
