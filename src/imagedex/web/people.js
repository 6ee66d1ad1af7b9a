// People: one card per person the faces were grouped into, with a face cropped from the cover
// image's thumbnail, the counts and a link to their photos; editors rename, hide and merge.
// `/people?person=ID` shows one person (the image page's face boxes link there) with each of
// their faces; editors take a wrongly grouped face off them ("Not this person").

import { api, query } from "./api.js";
import { announce, clear, h } from "./dom.js";

const PAGE_SIZE = 200;
const FACE_MARGIN = 1.4; // the crop shows a little around the detector's tight box
const path = (id) => `/api/people/${encodeURIComponent(id)}`;
let active = null; // the rendered page's update(), for in-page navigation
const mayEdit = (session) => !session?.authRequired || ["editor", "admin"].includes(session.role);
const nameOf = (person) => person.name || "Unnamed";
const who = (person) => person.name || `unnamed person ${person.id}`; // unique, for link names
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** Place the thumbnail so that the face box fills the square frame (percentages of the frame,
 * so it scales with the card); the picture stays hidden until it is placed. */
function cropTo(img, box) {
  const place = () => {
    const width = img.naturalWidth;
    const height = img.naturalHeight;
    if (!width || !height) return;
    // the square's side in thumbnail pixels, never larger than the picture's shorter side allows
    const side = Math.min(Math.max(box.width * width, box.height * height) * FACE_MARGIN, Math.max(width, height));
    const centreX = (box.left + box.width / 2) * width;
    const centreY = (box.top + box.height / 2) * height;
    Object.assign(img.style, {
      width: `${(width / side) * 100}%`,
      height: `${(height / side) * 100}%`,
      left: `${((side / 2 - centreX) / side) * 100}%`,
      top: `${((side / 2 - centreY) / side) * 100}%`,
      visibility: "visible",
    });
  };
  if (img.complete) place();
  else img.addEventListener("load", place, { once: true });
}

function faceImage(person) {
  const cover = person.cover || {};
  const label = `Face of ${who(person)}`;
  if (!cover.thumbnail) return h("div", { class: "face face-missing", role: "img", "aria-label": `${label}: no picture` });
  const img = h("img", { src: cover.thumbnail, alt: label, loading: "lazy", decoding: "async" });
  if (cover.bbox) cropTo(img, cover.bbox);
  else img.style.visibility = "visible";
  return h("div", { class: "face" }, img);
}

export function render(main, url, _params, { session } = {}) {
  const editor = mayEdit(session);
  const status = h("p", { class: "status", id: "people-status", role: "status", "aria-live": "polite" });
  const summary = h("p", { class: "muted", id: "people-summary" });
  const showHidden = h("input", { type: "checkbox", id: "show-hidden-people" });
  const grid = h("ul", { class: "people-grid", id: "people" });
  const more = h("button", { type: "button", class: "secondary load-more", hidden: true }, "More people");
  const facesBox = h("div", { id: "person-faces" });
  let alive = true;
  let people = [];
  let single = null;
  let latest = 0; // only the newest load draws: a slow older answer never overwrites it

  function say(text, tone) {
    status.dataset.tone = tone || "";
    status.textContent = text;
    if (text) announce(text);
  }
  const fail = (error) => say(error.detail || String(error), "error");

  function card(person) {
    const headingId = `person-${person.id}-name`;
    const photos = h("a", { href: "/search" + query({ q: `person:${person.id}` }), "aria-label": `Photos of ${who(person)}` }, "Photos");
    const item = h("li", { class: "person-card card", id: `person-${person.id}`, dataset: { person: String(person.id) } },
      h("article", { "aria-labelledby": headingId },
        faceImage(person),
        h("div", { class: "person-body" },
          h("h2", { class: "person-name", id: headingId }, nameOf(person),
            person.name ? null : h("span", { class: "muted" }, ` #${person.id}`),
            person.hidden ? h("span", { class: "badge" }, " hidden") : null),
          h("p", { class: "person-counts muted" },
            `${plural(person.faces, "face", "faces")} in ${plural(person.images ?? person.faces, "image", "images")}`),
          h("p", { class: "person-links" }, photos),
          editor ? editControls(person) : null)));
    return item;
  }

  function editControls(person) {
    const inputId = `person-${person.id}-rename`;
    const input = h("input", { id: inputId, type: "text", value: person.name, maxlength: 100, autocomplete: "off" });
    const rename = h("form", { class: "person-rename" },
      h("label", { for: inputId }, person.name ? "Rename" : "Name"),
      h("span", { class: "inline" }, input, h("button", { type: "submit", class: "small" }, "Save")));
    rename.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const changed = await api(path(person.id), { method: "PATCH", json: { name: input.value } });
        say(`Person ${person.id} is now ${nameOf(changed)}.`, "good");
        await load();
      } catch (error) { fail(error); }
    });
    const hide = h("button", { type: "button", class: "small" }, person.hidden ? "Show" : "Hide");
    hide.addEventListener("click", async () => {
      try {
        await api(path(person.id), { method: "PATCH", json: { hidden: !person.hidden } });
        say(person.hidden ? `${nameOf(person)} is shown again.` : `${nameOf(person)} is hidden from this page.`, "good");
        await load();
      } catch (error) { fail(error); }
    });
    const others = people.filter((other) => other.id !== person.id);
    const selectId = `person-${person.id}-merge`;
    const select = h("select", { id: selectId },
      h("option", { value: "" }, "Choose a person…"),
      others.map((other) => h("option", { value: String(other.id) }, `${nameOf(other)} #${other.id}`)));
    const merge = h("form", { class: "person-merge" },
      h("label", { for: selectId }, "Same person as"),
      h("span", { class: "inline" }, select, h("button", { type: "submit", class: "small" }, "Merge")));
    merge.addEventListener("submit", async (event) => {
      event.preventDefault();
      const target = others.find((other) => String(other.id) === select.value);
      if (!target) { say("Choose the person to merge with.", "error"); select.focus(); return; }
      const question = `Merge ${nameOf(person)} #${person.id} into ${nameOf(target)} #${target.id}? `
        + `Their ${plural(person.faces, "face", "faces")} become ${nameOf(target)}'s.`;
      if (!window.confirm(question)) return;
      try {
        await api(path(target.id) + "/merge", { method: "POST", json: { other: String(person.id) } });
        say(`${nameOf(person)} #${person.id} was merged into ${nameOf(target)} #${target.id}.`, "good");
        await load();
        main.querySelector(`#person-${target.id} h2`)?.setAttribute("tabindex", "-1");
        main.querySelector(`#person-${target.id} h2`)?.focus();
      } catch (error) { fail(error); }
    });
    return h("div", { class: "person-edit" }, rename,
      others.length && !single ? merge : null,
      h("p", { class: "person-actions" }, hide));
  }

  /** One person's faces, each cropped from its image's thumbnail, with its image link. */
  function faceList(person) {
    const faces = person.face_list || [];
    if (!faces.length) return [];
    return [
      h("h2", { id: "person-faces-title" }, `Faces of ${who(person)} (${faces.length})`),
      h("ul", { class: "people-grid face-list", "aria-labelledby": "person-faces-title" },
        faces.map((face) => faceItem(person, face))),
    ];
  }

  function faceItem(person, face) {
    const label = `Face ${face.face_id} of ${who(person)}, in image ${face.id}`;
    let picture = h("div", { class: "face face-missing", role: "img", "aria-label": `${label}: no picture` });
    if (face.thumbnail) {
      const img = h("img", { src: face.thumbnail, alt: label, loading: "lazy", decoding: "async" });
      if (face.bbox) cropTo(img, face.bbox);
      else img.style.visibility = "visible";
      picture = h("div", { class: "face" }, img);
    }
    const open = h("a", { href: `/images/${encodeURIComponent(face.id)}`, "aria-label": `Image of face ${face.face_id}` }, "Image");
    let notThem = null;
    if (editor) {
      notThem = h("button", { type: "button", class: "small", "aria-label": `Face ${face.face_id} is not ${who(person)}` }, "Not this person");
      notThem.addEventListener("click", async () => {
        notThem.disabled = true;
        try {
          await api(`${path(person.id)}/faces/${encodeURIComponent(face.face_id)}/split`, { method: "POST", json: {} });
          say(`Face ${face.face_id} is no longer ${nameOf(person)}'s, and will not be grouped with them again.`, "good");
          await load();
        } catch (error) {
          notThem.disabled = false;
          fail(error);
        }
      });
    }
    return h("li", { class: "person-card card face-card", dataset: { face: String(face.face_id) } },
      picture, h("p", { class: "person-body person-actions" }, open, notThem ? " " : null, notThem));
  }

  async function load({ append = false } = {}) {
    const mine = ++latest;
    const current = () => alive && mine === latest;
    grid.setAttribute("aria-busy", "true");
    try {
      if (single !== null) {
        const person = await api(path(single));
        if (!current()) return;
        people = [person];
        clear(grid).append(card(person));
        clear(facesBox).append(...faceList(person));
        summary.textContent = "";
        return;
      }
      const offset = append ? people.length : 0;
      const data = await api("/api/people" + query({ hidden: showHidden.checked, limit: PAGE_SIZE, offset }));
      if (!current()) return;
      people = append ? people.concat(data.people) : data.people;
      clear(grid).append(...people.map(card));
      more.hidden = data.people.length < PAGE_SIZE;
      summary.textContent = `${plural(data.total, "person", "people")}, ${plural(data.faces, "face", "faces")}`
        + (data.waiting ? `; ${plural(data.waiting, "face waits", "faces wait")} for more alike faces to form a person` : "");
      if (!people.length) {
        grid.append(h("li", { class: "muted empty" }, data.faces || data.waiting
          ? "Nobody yet: a person forms once a few alike faces are found."
          : "No faces are grouped into people. Face recognition is off by default (setting face_recognition); "
            + "with it on, new images are grouped as they are indexed, and `imagedex reprocess` groups the existing ones."));
      }
    } catch (error) {
      if (!current()) return;
      clear(grid);
      clear(facesBox);
      fail(error);
    } finally {
      if (mine === latest) grid.setAttribute("aria-busy", "false");
    }
  }

  function update(next) {
    const wanted = next.searchParams.get("person");
    single = wanted && wanted.trim() ? wanted.trim() : null;
    clear(main).append(
      h("h1", {}, single === null ? "People" : "Person"),
      ...(single === null
        ? [summary, h("p", { class: "check" }, showHidden, h("label", { for: "show-hidden-people" }, "Show hidden people"))]
        : [h("p", { class: "crumbs" }, h("a", { href: "/people" }, "← All people"))]),
      status, grid, facesBox, more);
    clear(facesBox);
    say("");
    load();
  }

  showHidden.addEventListener("change", () => load());
  more.addEventListener("click", () => load({ append: true }));
  update(url);
  active = update;
  return () => { alive = false; if (active === update) active = null; };
}

/** The app calls update() when only the query changes (`/people` <-> `/people?person=3`). */
export function update(url) {
  active?.(url);
}
