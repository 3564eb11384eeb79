"""A faithful local emulator of the Google Cloud APIs the operator calls."""
