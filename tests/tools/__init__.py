"""Tests of liwi.tools (package so helper modules import relatively)."""
