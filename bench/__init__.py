"""
Benchmarks of the personal zone hub (C{make bench}, C{python -m bench}).

See C{bench/README.md} for what is measured and how to read the table.
"""
