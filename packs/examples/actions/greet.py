"""Returns a greeting; the worker calls run(**parameters) and stores the return value as `data`.

The parameters are the execution's own (execution.config); in service mode the pack's keys
(api_token here) join them by name, so run() takes the rest as **others."""


def run(name, greeting="Hello", **others):
    message = f"{greeting}, {name}!"
    return {"message": message, "length": len(message)}
