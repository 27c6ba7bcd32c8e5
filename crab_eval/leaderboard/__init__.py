"""Leaderboard: submissions validated and scored safely, entries, and a static page."""
