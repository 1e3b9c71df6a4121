# what: sum_answer that checks each condition in turn with isinstance and excludes bool explicitly
# cell: sum_answer
# fails: none
def sum_answer(line):
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return {"Error": "the line is not UTF-8"}
    try:
        request = json.loads(text)
    except json.JSONDecodeError as exc:
        return {"Error": f"not JSON: {exc}"}
    if not isinstance(request, dict):
        return {"Error": "a request is a JSON object"}
    values = []
    for key in ("A", "B"):
        if key not in request:
            return {"Error": f"{key} is missing"}
        value = request[key]
        if isinstance(value, bool) or not isinstance(value, int):
            return {"Error": f"{key} must be an integer, got {value!r}"}
        values.append(value)
    return {"Sum": values[0] + values[1]}
