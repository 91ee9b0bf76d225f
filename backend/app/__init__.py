"""The wiring: the application (main.py) and what answers while it loads (boot.py). The only
package that imports backend.api. Empty: boot.py must load without torch or FastAPI."""
