"""gunicorn settings read from the working directory by the Procfile's command (issue 11).

gunicorn has no read timeout for request headers or bodies: the reverse proxy in
deploy/nginx.conf is required in production to bound slow clients in time. What gunicorn can
bound directly is the size of what a client may send before the app sees it, and the state
database is created here once, before the workers fork, so they never race to create it.
"""

limit_request_line = 8190  # bytes of the request line
limit_request_fields = 64  # header fields
limit_request_field_size = 8190  # bytes per header field
keepalive = 5  # seconds an idle kept-alive connection is held


def on_starting(server):  # noqa: ARG001 - gunicorn's hook signature
    from cds_service.config import Settings
    from cds_service.security.jwt_auth import ReplayStore

    settings = Settings.from_env()
    if settings.auth_required:
        ReplayStore(settings.state_db)
