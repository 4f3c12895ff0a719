"""The application layer: the demo, its report sections, reference models trained on demand.

It ties data, models, compute and reports together and may import every layer below it; only
the command line and the public face import it.
"""
