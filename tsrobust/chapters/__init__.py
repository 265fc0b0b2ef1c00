"""The chapter layer: one module per notebook (its settings, runs, paper tables, claim rows and
figures). Chapter modules use the core (``tsrobust.*``) and never import one another; the CIFAR
chapters share their settings through :mod:`tsrobust.chapters.cifar`."""
