// Nezuko's only script besides htmx: the Content-Security-Policy allows no
// inline script, so behaviour that used to sit in on* attributes lives here.
document.addEventListener("click", (event) => {
  // <button data-dismiss>: removes the message it sits in (flash messages).
  const button = event.target.closest("[data-dismiss]");
  if (button) button.parentElement.remove();
});

// The live feed keeps only its newest rows (data-keep on the table): a raid
// must not grow the page without limit. Runs after every swap, live frames included.
document.addEventListener("htmx:afterSettle", trimFeeds);
document.addEventListener("htmx:oobAfterSwap", trimFeeds);

function trimFeeds() {
  document.querySelectorAll("table[data-keep]").forEach((table) => {
    const keep = Number(table.dataset.keep);
    const rows = table.tBodies[0] ? table.tBodies[0].rows : [];
    for (let i = rows.length - 1; i >= keep; i--) rows[i].remove();
  });
}
