"""The Flask app factory: defaults → configuration → blueprints and error handlers, then the
OpenAPI document of the routes."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from api import (
    auth,
    dashboard,
    db,
    docs,
    http_metrics,
    images,
    job_images,
    metrics,
    status,
    tokens,
    users,
    workload_images,
    workloads,
)
from api.config import ApiConfig
from api.errors import register_error_handlers
from api.inputs import ID_CONVERTER, IdConverter
from api.json_provider import OrjsonProvider
from api.notify import ControllerNotifier
from api.progress_watch import ProgressWatch
from datastore import connect, is_postgres
from datastore.filtered_cache import FilteredImagesCache
from foundation import defaults
from protocol import progress_events_address

log = logging.getLogger(__name__)


def progress_source(config: ApiConfig) -> str:
    """Where this API hears of workload progress: PostgreSQL's notices when the datastore
    is PostgreSQL (the controller may be on another host), else the controller's socket in
    the shared data dir."""
    if is_postgres(config.database):
        return config.database
    return progress_events_address(config.data_dir)


def create_app(config: ApiConfig, test_config: dict | None = None) -> Flask:
    """Build the API for `config`; `test_config` overrides Flask settings in tests."""
    app = Flask(__name__)
    app.config.update(
        DPIP=config,
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
    )
    app.json = OrjsonProvider(app)
    if test_config:
        app.config.update(test_config)
    app.url_map.converters[ID_CONVERTER] = IdConverter
    connect(config.database).close()  # create the schema before the first request
    app.extensions["dpip_notifier"] = ControllerNotifier(config.controller_address)
    app.extensions["dpip_progress_watch"] = ProgressWatch(
        progress_source(config), config.max_waiting_requests
    )
    app.extensions["dpip_filtered_images"] = FilteredImagesCache(
        defaults.FILTERED_LISTS_CACHED_NUMBERS
    )
    db.init_app(app)
    http_metrics.init_app(app)
    tokens.init_app(
        app, config.jwt_secret, config.token_ttl_seconds, bool(config.dashboard_cookie_secure)
    )
    register_error_handlers(app)
    for blueprint in (
        auth.bp,
        workloads.bp,
        workload_images.bp,
        images.bp,
        job_images.bp,
        users.bp,
        status.bp,
        docs.bp,
        metrics.bp,
        dashboard.bp,
    ):
        app.register_blueprint(blueprint)
    docs.install_document(app)
    metrics.install_registry(app)
    if config.proxy_hops:
        # Behind a load balancer every connection comes from it: the client's address (which
        # the login throttle counts by) is the one the trusted proxies put in X-Forwarded-For.
        hops = config.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    return app
