"""The ``ray`` deploy target: mmship's runtime inside a Ray Serve application.

Ray is an optional extra (``pip install 'mmship[ray]'``); nothing here imports it until a
deployment starts.
"""
