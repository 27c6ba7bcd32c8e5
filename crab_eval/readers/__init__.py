"""Readers shared by task adapters: annotation file formats (JSON lists, split CSVs) and Crab's answer tags."""
