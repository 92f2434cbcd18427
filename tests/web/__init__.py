"""Browser tests of examples/web_approval: both apps in a real headless Chromium."""
