"""Open, click and unsubscribe tracking, shared by the two services it crosses.

```text
ingest    the request's choice (opens, clicks, unsubscribe) and the link base (the sender
          domain's verified tracking CNAME, else POSTWIRE_PUBLIC_URL) ─▶ stored with the content
delivery  each recipient's copy: pixel, rewritten links, unsubscribe link and
          List-Unsubscribe headers, each URL carrying a signed token (copies.py, tokens.py)
events    serves /t/o, /t/c, /t/u: checks the token, finds the link in the stored
          content (html.py numbers links the same way), publishes open/click/unsubscribe
```
"""
