"""Queries of models and jobs, each scoped to an owner (another user's row is a 404)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.platform.db import utcnow
from quantdesk.platform.pagination import CursorCodec, split_page
from quantdesk.platform.repository import OwnerScopedRepository
from quantdesk.signals.models import SignalJobRow, SignalModelRow

MODEL_CURSOR = CursorCodec("signal_models", 2)
JOB_CURSOR = CursorCodec("signal_jobs", 2)


def _position(created: str, row_id: str) -> tuple[dt.datetime, uuid.UUID]:
    return dt.datetime.fromisoformat(created), uuid.UUID(row_id)


class ModelRepository(OwnerScopedRepository[SignalModelRow]):
    model = SignalModelRow
    owner_column = "owner_id"

    async def page(
        self, owner_id: uuid.UUID, *, limit: int, cursor: str | None, name: str | None = None
    ) -> tuple[list[SignalModelRow], str | None]:
        """Newest first."""
        query = self.owned_by(owner_id)
        if name is not None:
            query = query.where(SignalModelRow.name == name)
        if cursor:
            created, row_id = MODEL_CURSOR.decode_as(cursor, _position)
            query = query.where(
                (SignalModelRow.created_at < created)
                | ((SignalModelRow.created_at == created) & (SignalModelRow.id < row_id))
            )
        query = query.order_by(SignalModelRow.created_at.desc(), SignalModelRow.id.desc())
        rows = (await self.db.execute(query.limit(limit + 1))).scalars().all()
        return split_page(
            rows, limit, lambda last: MODEL_CURSOR.encode(last.created_at.isoformat(), str(last.id))
        )

    async def latest_named(
        self, owner_id: uuid.UUID, name: str, instrument: str | None = None
    ) -> SignalModelRow | None:
        """The latest version of ``name`` trained on ``instrument``, else on any instrument."""
        query = self.owned_by(owner_id).where(SignalModelRow.name == name)
        if instrument is not None:
            query_own = query.where(SignalModelRow.instrument == instrument)
            own = (
                await self.db.execute(query_own.order_by(SignalModelRow.version.desc()).limit(1))
            ).scalar_one_or_none()
            if own is not None:
                return own
        query = query.order_by(SignalModelRow.created_at.desc(), SignalModelRow.version.desc())
        found: SignalModelRow | None = (await self.db.execute(query.limit(1))).scalar_one_or_none()
        return found

    async def next_version(self, owner_id: uuid.UUID, name: str, instrument: str) -> int:
        query = select(func.max(SignalModelRow.version)).where(
            SignalModelRow.owner_id == owner_id,
            SignalModelRow.name == name,
            SignalModelRow.instrument == instrument,
        )
        latest = (await self.db.execute(query)).scalar_one_or_none()
        return int(latest or 0) + 1


class JobRepository(OwnerScopedRepository[SignalJobRow]):
    model = SignalJobRow
    owner_column = "owner_id"

    async def page(
        self, owner_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[SignalJobRow], str | None]:
        query = self.owned_by(owner_id)
        if cursor:
            created, row_id = JOB_CURSOR.decode_as(cursor, _position)
            query = query.where(
                (SignalJobRow.created_at < created)
                | ((SignalJobRow.created_at == created) & (SignalJobRow.id < row_id))
            )
        query = query.order_by(SignalJobRow.created_at.desc(), SignalJobRow.id.desc())
        rows = (await self.db.execute(query.limit(limit + 1))).scalars().all()
        return split_page(
            rows, limit, lambda last: JOB_CURSOR.encode(last.created_at.isoformat(), str(last.id))
        )


class JobQueue:
    """The runner's view of jobs: it works on a job by id once it has claimed it.  Not a
    user's view (no owner): only the job runner and the CLI use it."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def claim(self, job_id: uuid.UUID) -> SignalJobRow | None:
        """queued -> running, atomically: of several processes woken for one job, one runs it."""
        claimed = await self.db.execute(
            update(SignalJobRow)
            .where(SignalJobRow.id == job_id, SignalJobRow.status == "queued")
            .values(status="running", started_at=utcnow())
        )
        if getattr(claimed, "rowcount", 0) != 1:
            return None
        return await self.db.get(SignalJobRow, job_id, populate_existing=True)

    async def get(self, job_id: uuid.UUID) -> SignalJobRow:
        row = await self.db.get(SignalJobRow, job_id, populate_existing=True)
        if row is None:
            raise LookupError(f"no job {job_id}")
        return row

    async def queued(self) -> list[uuid.UUID]:
        query = select(SignalJobRow.id).where(SignalJobRow.status == "queued")
        return list((await self.db.execute(query.order_by(SignalJobRow.created_at))).scalars())

    async def progress(self, job_id: uuid.UUID, done: int, total: int) -> None:
        await self.db.execute(
            update(SignalJobRow)
            .where(SignalJobRow.id == job_id)
            .values(done=done, total=total, progress=done / total if total else 1.0)
        )

    async def finish(
        self,
        job_id: uuid.UUID,
        *,
        result: dict[str, object] | None = None,
        picture: str | None = None,
        error: str | None = None,
        model_id: uuid.UUID | None = None,
    ) -> None:
        values: dict[str, object] = {
            "status": "failed" if error is not None else "done",
            "finished_at": utcnow(),
            "result": result,
            "picture": picture,
            "error": error,
        }
        if error is None:
            values["progress"] = 1.0
        if model_id is not None:
            values["model_id"] = model_id
        await self.db.execute(update(SignalJobRow).where(SignalJobRow.id == job_id).values(values))
