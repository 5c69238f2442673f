"""The floor: the least a hook endpoint can cost on this stack.

A Flask app whose hook route only parses the request body with orjson and answers a fixed
card, served by the same gunicorn command line as the service (bench.run swaps the app spec).
The service's CPU per hook request divided by this app's, on the same body in the same run, is
the figure issue 13 targets (≤ 1.5×).

    gunicorn ... 'bench.floor_app:create_app()'
"""

from __future__ import annotations

import orjson
from flask import Flask, Response, request

_CARD = orjson.dumps({"cards": [{
    "uuid": "00000000-0000-4000-8000-000000000000",
    "summary": "Magnesium 1.07 mEq/L on 2026-11-23: below target",
    "indicator": "warning",
    "source": {"label": "Tacrolimus magnesium guideline"},
}]})
_DISCOVERY = orjson.dumps({"services": []})


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/cds-services/<service_id>")
    def hook(service_id: str) -> Response:
        body = orjson.loads(request.get_data(cache=False))
        if not isinstance(body, dict):
            return Response(b'{"error":"not an object"}', status=400, mimetype="application/json")
        return Response(_CARD, mimetype="application/json")

    @app.get("/cds-services")
    def discovery() -> Response:
        return Response(_DISCOVERY, mimetype="application/json")

    return app
