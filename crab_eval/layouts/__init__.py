"""Writers of the official annotation layouts, from plain Python structures.

Tests build their fixtures with them, the scoring benchmark builds official-size inputs with them, and the
synthetic suite lays out its data with them, so that one writer per layout serves all three.
"""
