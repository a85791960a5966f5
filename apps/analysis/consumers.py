"""The live progress of one run, over ``/ws/analyses/<id>/``: the consumer only relays.

On connect it sends the run's current state at once (a page opened mid-run catches up), then
every change. With Redis the workers push each change through the channel layer
(:func:`apps.analysis.services.publish`); on the embedded default, where daphne and qcluster are
separate processes and the in-memory layer cannot carry it, the consumer reads the run's row
every ``ANALYSIS_POLL_MS``. Outsiders are refused before the handshake completes (403).
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from . import selectors
from .models import FINISHED, AnalysisRun


class AnalysisProgressConsumer(AsyncJsonWebsocketConsumer):
    run_id: int
    last: dict[str, Any] | None = None
    poller: asyncio.Task | None = None

    async def connect(self) -> None:
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if not await self._visible():
            await self.close()
            return
        await self.accept()
        await self.channel_layer.group_add(selectors.group_name(self.run_id), self.channel_name)
        await self._relay(None)
        if not settings.ANALYSIS_PUSH and not self._finished():
            self.poller = asyncio.ensure_future(self._poll())

    async def disconnect(self, code: int) -> None:
        if self.poller is not None:
            self.poller.cancel()
        await self.channel_layer.group_discard(selectors.group_name(self.run_id), self.channel_name)

    async def run_state(self, event: dict[str, Any]) -> None:
        """A worker's push (Redis): the state, blinded for this user, unless already sent."""
        await self._relay(event["state"])

    async def _poll(self) -> None:
        while not self._finished():
            await asyncio.sleep(settings.ANALYSIS_POLL_MS / 1000)
            await self._relay(None)

    async def _relay(self, state: dict[str, Any] | None) -> None:
        current = await self._state(state)
        if current is not None and current != self.last:
            self.last = current
            await self.send_json(current)

    def _finished(self) -> bool:
        return self.last is not None and self.last["status"] in FINISHED

    @database_sync_to_async
    def _visible(self) -> bool:
        return selectors.visible_runs(self.scope["user"]).filter(pk=self.run_id).exists()

    @database_sync_to_async
    def _state(self, pushed: dict[str, Any] | None) -> dict[str, Any] | None:
        run = AnalysisRun.objects.select_related("slide__project").filter(pk=self.run_id).first()
        if run is None:
            return None
        return selectors.state_for(self.scope["user"], run, pushed)
