"""`oomlab serve`: an OpenAI-compatible endpoint that spends test-time compute and returns the bill.

A client names a strategy and a budget (in the model name, `majority-16:gemma-3-270m`, or in
`extra_body={"oomlab": {...}}`); the server runs that strategy through the sweep's metered backend,
so every sample lands in the Store under one run per server session, an identical seeded request
is served from the cache, and the response's `usage` and `oomlab` objects carry the whole bill.

- `names`: the model-name grammar;  `task`: the pass-through task a request becomes;
- `runner`: one request through a strategy, under caps (`oomlab.caps`), onto the books;
- `streaming`: tokens handed to a streaming client as the backend decodes them (embedded or upstream);
- `app`: the FastAPI routes, auth, limits and server-sent events.
"""
