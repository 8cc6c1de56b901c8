// Nezuko's only script besides htmx: the Content-Security-Policy allows no
// inline script, so behaviour that used to sit in on* attributes lives here.
document.addEventListener("click", (event) => {
  // <button data-dismiss>: removes the message it sits in (flash messages).
  const button = event.target.closest("[data-dismiss]");
  if (button) button.parentElement.remove();
});

// The live feed keeps only its newest rows (data-keep on the table): a raid
// must not grow the page without limit. Live frames insert rows out-of-band,
// so watch the tables themselves rather than htmx's events.
function trimFeed(table) {
  const keep = Number(table.dataset.keep);
  const body = table.tBodies[0];
  if (!body) return;
  while (body.rows.length > keep) body.rows[body.rows.length - 1].remove();
}

function watchFeeds() {
  document.querySelectorAll("table[data-keep]").forEach((table) => {
    trimFeed(table);
    new MutationObserver(() => trimFeed(table)).observe(table, { childList: true, subtree: true });
  });
}

if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", watchFeeds);
} else {
  watchFeeds();
}

// <form data-autosubmit>: the language switcher applies a choice at once; its
// button stays for keyboards and for browsers without this script.
document.addEventListener("change", (event) => {
  const form = event.target.closest("form[data-autosubmit]");
  if (form) form.submit();
});
