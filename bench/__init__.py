"""The benchmarks of materialsearch: ``python -m bench.run`` (or ``python bench/run.py``) and one script per topic.

``bench.common`` holds what the scripts share; ``bench.product`` is the one place they import the product from.
"""
