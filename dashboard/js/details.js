// The detail view: every field of one event as text, and a link to its trace when configured.

const TRACE_ID = /^[0-9a-f]{32}$/i;

function valueText(value) {
  if (value === null || value === undefined) return "null";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

export class Details {
  constructor({ panel, title, fields, traceLink, closeButton, traceTemplate }) {
    this.panel = panel;
    this.title = title;
    this.fields = fields;
    this.traceLink = traceLink;
    this.traceTemplate = traceTemplate;
    closeButton.addEventListener("click", () => this.close());
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") this.close(); });
  }

  show(message) {
    this.title.textContent = String(message.event_type);
    const rows = [["stream id", message.id], ...Object.entries(message.full_event || {})].map(([key, value]) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      const text = document.createElement("td");
      name.textContent = key;
      text.textContent = valueText(value);
      row.append(name, text);
      return row;
    });
    this.fields.replaceChildren(...rows);
    const traceId = message.trace_id;
    if (this.traceTemplate && typeof traceId === "string" && TRACE_ID.test(traceId)) {
      this.traceLink.href = this.traceTemplate.replaceAll("{trace_id}", encodeURIComponent(traceId));
      this.traceLink.hidden = false;
    } else {
      this.traceLink.hidden = true;
      this.traceLink.removeAttribute("href");
    }
    this.panel.hidden = false;
  }

  close() {
    this.panel.hidden = true;
  }
}
