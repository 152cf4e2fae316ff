// Writing text into the page: only when it changes, since every write makes the browser lay out and
// paint again, and the page updates several counters many times a second.

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
