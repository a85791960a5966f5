from django import template

register = template.Library()


@register.filter
def filesize(value: int | None) -> str:
    """Bytes as a short human figure (binary units, as file managers show them)."""
    if not value:
        return ""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
