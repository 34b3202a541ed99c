// Every page: progress bars drawn from data-width, sortable tables.
import { setWidth } from "./dom.js";

for (const bar of document.querySelectorAll("[data-width]")) {
  setWidth(bar, Number(bar.dataset.width));
}

function cellValue(row, index, kind) {
  const cell = row.children[index];
  if (!cell) return "";
  if (kind === "num") {
    const raw = cell.dataset.value ?? cell.textContent;
    const value = Number.parseFloat(raw);
    return Number.isNaN(value) ? -Infinity : value;
  }
  return cell.textContent.trim().toLowerCase();
}

for (const table of document.querySelectorAll("table[data-sortable]")) {
  const headers = [...table.querySelectorAll("thead th.sortable")];
  headers.forEach((th, index) => {
    th.tabIndex = 0;
    const sort = () => {
      const descending = th.getAttribute("aria-sort") !== "descending";
      for (const other of headers) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", descending ? "descending" : "ascending");
      const body = table.tBodies[0];
      const kind = th.dataset.sort || "text";
      const rows = [...body.rows];
      rows.sort((a, b) => {
        const x = cellValue(a, index, kind);
        const y = cellValue(b, index, kind);
        const order = x < y ? -1 : x > y ? 1 : 0;
        return descending ? -order : order;
      });
      body.append(...rows);
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sort();
      }
    });
  });
}
