"""The Gradio front end: a browser webcam, an uploaded video or a server-side stream through
the same library calls as ``detstream run`` (:mod:`detstream.stream.session`), shown live in a page.

Start it with ``detstream demo``; in Python::

    from detstream.demo.app import DemoOptions, serve
    serve(DemoOptions(port=7860))
"""
