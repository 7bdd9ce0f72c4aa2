// The page's few DOM helpers. Text always goes in through textContent, never innerHTML: backend
// names, reasons and event summaries come from outside and must not become markup.

/**
 * Creates an element with a class, text, attributes and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{ className?: string, text?: string, attrs?: Record<string, string> }} [props]
 * @param {(Node | string)[]} [children]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, props = {}, children = []) {
  const element = document.createElement(tag);
  if (props.className !== undefined) element.className = props.className;
  if (props.text !== undefined) element.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/**
 * Sets text only when it changed, so that a refresh does not disturb a screen reader or a selection.
 * @param {Element} element
 * @param {string} text
 */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/**
 * Sets an attribute only when it changed.
 * @param {Element} element
 * @param {string} name
 * @param {string} value
 */
export function setAttr(element, name, value) {
  if (element.getAttribute(name) !== value) element.setAttribute(name, value);
}

/**
 * The element with this id, of this type; a page that lacks it is a broken build, so this throws.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`the page has no <${type.name}> with id '${id}'`);
  return element;
}

/**
 * The first descendant matching selector; throws when missing (the element was built by this page).
 * @param {ParentNode} parent
 * @param {string} selector
 * @returns {HTMLElement}
 */
export function part(parent, selector) {
  const element = parent.querySelector(selector);
  if (!(element instanceof HTMLElement)) throw new Error(`missing ${selector}`);
  return element;
}

/**
 * Keeps a container's children in the order of items, one child per key, creating, updating and
 * removing as needed. Existing children are reused, so a focused button inside a table row keeps
 * its focus across the refresh every second (rebuilding the rows would throw it away).
 * @template T
 * @param {HTMLElement} container
 * @param {readonly T[]} items
 * @param {(item: T) => string} keyOf
 * @param {(item: T) => HTMLElement} create
 * @param {(element: HTMLElement, item: T) => void} update
 */
export function syncChildren(container, items, keyOf, create, update) {
  /** @type {Map<string, HTMLElement>} */
  const existing = new Map();
  for (const child of Array.from(container.children)) {
    if (child instanceof HTMLElement && child.dataset.key !== undefined) existing.set(child.dataset.key, child);
    else child.remove();
  }
  items.forEach((item, index) => {
    const key = keyOf(item);
    let element = existing.get(key);
    if (element === undefined) {
      element = create(item);
      element.dataset.key = key;
    } else {
      existing.delete(key);
    }
    update(element, item);
    const atIndex = container.children[index];
    if (atIndex !== element) container.insertBefore(element, atIndex ?? null);
  });
  for (const stale of existing.values()) stale.remove();
}
