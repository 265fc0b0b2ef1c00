"""tsrobust: a companion package to adversarial robustness in the teacher-student setting.

Modules are named after the sources' objects: ``theory`` (toys of the talk and §3 of Yang et al.),
``specialization`` (NC, BNC, MBNC, ε_in/ε_out), ``data``, ``models``, ``training``, ``attacks``,
``active_teacher`` (Ma & Ying), plus the book's plumbing: ``params`` (profiles and parameter
validation), ``results`` (recorded results with provenance), ``plotting`` and ``book``.
"""

__version__ = "0.1.0"
