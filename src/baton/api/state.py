"""Typed application state (``web.AppKey``), shared by the handlers."""

from __future__ import annotations

from aiohttp import web

from ..clock import Clock
from ..config import Config
from ..dispatch import Dispatcher
from ..ingest import Pipeline
from ..metrics import Metrics
from ..reload import Reloader
from ..store import Store
from ..sync import Syncer
from .probes import ProbeLog

CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
CLOCK = web.AppKey("clock", Clock)
METRICS = web.AppKey("metrics", Metrics)
PIPELINE = web.AppKey("pipeline", Pipeline)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
SYNCER = web.AppKey("syncer", Syncer)
PROBES = web.AppKey("probes", ProbeLog)
RELOADER = web.AppKey("reloader", Reloader)
