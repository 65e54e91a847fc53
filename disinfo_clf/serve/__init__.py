"""`disinfo-clf serve`: the library behind an HTTP API and a page for analysts (extra: ``disinfo-clf[serve]``).

:func:`disinfo_clf.serve.app.create_app` builds the application; :func:`disinfo_clf.serve.server.run`
serves it with uvicorn.
"""
