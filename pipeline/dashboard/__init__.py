"""The dashboard shell: pushing values to a dashboard, and a live wallboard that receives them.

Modules:
    client           the HTTP push: HMAC signature, idempotency key, one answer per attempt
    wallboard        the wallboard server: push endpoint, state API, page
    wallboard_tiles  what the wallboard shows (pure): push bodies checked, queue tiles
    wallboard_page   the wallboard's self-contained HTML page
"""
