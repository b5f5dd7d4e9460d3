"""Writes scenes/hostile/displays/many-items.yaml and the items it sells (40 bound items in
a grid of 8 x 5 on the counter, and a price board listing all of them) into market.yaml."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
ASSETS = ["tomato", "carrot", "kale", "lettuce", "beetroot", "apple", "pear", "mushroom"]
NAMES = ["Tomatoes", "Carrots", "Kale", "Butter lettuce", "Beetroot", "Apples", "Pears",
         "Mushrooms"]
COUNT = 40
BEGIN = "  # many-items: begin (make_many_items.py)\n"
END = "  # many-items: end\n"


def items_yaml() -> str:
    lines = [f'  - {{sku: MANY-{i:02d}, name: "{NAMES[i % 8]} no. {i + 1}", '
             f'price: "{1 + i * 0.25:.2f}", unit: kg, stock: {i}, farm: wordy}}\n'
             for i in range(COUNT)]
    return BEGIN + "".join(lines) + END


def display_yaml() -> str:
    out = ["# Forty bound items in a grid of 8 x 5 and a price board listing them all:\n",
           "# written by tests/browser/layout_market/make_many_items.py.\n",
           "format: 1\ndisplay:\n  id: many-items\n  zone: edge\n  title: Forty things for sale\n",
           "  farm: wordy\n",
           f"  items: [{', '.join(f'MANY-{i:02d}' for i in range(COUNT))}]\n",
           "  nodes:\n",
           "    - {id: light, kind: light, light: point, intensity: 1.2, "
           "position: [0, 0.9, 0.5]}\n",
           "    - {id: headline, kind: text, text: Forty things for sale, size: 0.04, "
           "position: [0, 0.55, -0.3]}\n"]
    for i in range(COUNT):
        x = -0.49 + (i % 8) * 0.14
        z = -0.5 + (i // 8) * 0.12
        out.append(
            f"    - id: item-{i}\n      kind: group\n      position: [{x:.2f}, 0, {z:.2f}]\n"
            f"      children:\n"
            f"        - {{id: model-{i}, kind: model, asset: {ASSETS[i % 8]}, "
            f"item: MANY-{i:02d}}}\n"
            f"        - {{id: price-{i}, kind: text, item: MANY-{i:02d}, "
            f'text: "{{{{ item.name }}}} {{{{ item.price }}}}", size: 0.014, max_width: 0.12, '
            f"position: [0, 0.15, 0]}}\n")
    out.append("    - id: board\n      kind: panel\n      title: Today at the stall\n"
               "      body: |-\n        {% for i in items %}\n"
               "        {{ i.name }}: {{ i.price }} / {{ i.unit }}\n        {% endfor %}\n"
               "      width: 0.42\n      height: 0.4\n      position: [0.85, 0.25, -0.3]\n"
               "      rotation: [0, -25, 0]\n")
    return "".join(out)


def main() -> None:
    market = HERE / "scenes" / "hostile" / "market.yaml"
    text = market.read_text()
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + text[text.index(END) + len(END):]
    market.write_text(text + items_yaml())
    (HERE / "scenes" / "hostile" / "displays" / "many-items.yaml").write_text(display_yaml())


if __name__ == "__main__":
    main()
