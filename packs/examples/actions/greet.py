"""Returns a greeting; the worker calls run(**parameters) and stores the return value as `data`."""


def run(name, greeting="Hello"):
    message = f"{greeting}, {name}!"
    return {"message": message, "length": len(message)}
