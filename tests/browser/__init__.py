"""Real-browser tests (Chromium under Playwright)."""
