# The wrong copy: must never run.
import sys
print('{"copy": "wrong"}')
sys.exit(42)
