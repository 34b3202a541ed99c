// A page whose content is still being made (a dataset processing) reloads itself.
const notice = document.querySelector("[data-refresh]");
if (notice) {
  const delay = Number(notice.dataset.refresh) || 2000;
  setTimeout(() => window.location.reload(), delay);
}
