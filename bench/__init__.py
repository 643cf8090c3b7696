"""kvstore's benchmark: each call against the raw driver doing the same work, on the same server.

Run it with ``bench/run`` (or ``.venv/bin/python -m bench``); ``--help`` lists the options.
"""
