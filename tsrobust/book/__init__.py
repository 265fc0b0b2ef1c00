"""The book's build tooling: ``python -m tsrobust.book build`` (:mod:`tsrobust.book.build`).

papermill executes the notebooks through :mod:`~tsrobust.book.kernel`'s kernel client, Jupyter
Book renders them with the Sphinx extension :mod:`~tsrobust.book.sphinx_ext` and the offline
JavaScript of ``static/``, and :mod:`~tsrobust.book.browser_check` loads every page in headless
Chromium. ``python -m tsrobust.book run`` (:mod:`~tsrobust.book.cluster`) executes the chapters
as submitit jobs (Slurm, or local processes), each chapter's independent runs first as jobs of
their own, before the same render; ``python -m tsrobust.book costs`` (:mod:`~tsrobust.book.costs`)
tabulates what each profile costs: measured from the committed records, else estimated from
FLOPs.
"""
