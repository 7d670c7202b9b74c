"""Online inference: the Ray Serve application, its HTTP API and the web layer viewer.

* :mod:`liwi.serving.settings` — the application's typed arguments (limits, model URI).
* :mod:`liwi.serving.schemas` — request/response models (they make the OpenAPI schema).
* :mod:`liwi.serving.requests` — turns untrusted HTTP bodies into a validated job.
* :mod:`liwi.serving.encoders` — cropped 8-bit stack → JSON / ZIP / PSD, encoded in parallel.
* :mod:`liwi.serving.api` — the FastAPI app (routes, auth, error mapping).
* :mod:`liwi.serving.deployments` — the Ray Serve ingress + batched model deployments
  and the ``build_app`` builder named by ``serve/config.yaml``.
* :mod:`liwi.serving.runner` — ``liwi serve``: local Ray + the Serve config, foreground.

Nothing here imports Ray or torch at module top level except ``deployments``.
"""
