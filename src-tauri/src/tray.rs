//! Renders a [`MenuModel`] into the tray. Items are kept by id so frequent changes (slot counts,
//! countdowns, elapsed times) are applied in place with `set_text` / `set_checked`; the menu is
//! rebuilt only when the model's shape changes. A tray that cannot be created is logged and the
//! app keeps running (GNOME without the AppIndicator extension has no tray at all).

use std::collections::HashMap;

use tauri::image::Image;
use tauri::menu::{
    CheckMenuItem, IsMenuItem, Menu, MenuItem, MenuItemKind, PredefinedMenuItem, Submenu,
};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Runtime};

use crate::icon::{icon_png, IconVariant, TrayState};
use crate::menu_model::{Entry, MenuModel};

pub const TRAY_ID: &str = "main";

pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    items: HashMap<String, MenuItemKind<R>>,
    shape: String,
    last: Option<MenuModel>,
    look: Option<(TrayState, IconVariant)>,
    tooltip: String,
}

impl<R: Runtime> Tray<R> {
    /// Create the tray icon with an initial menu. `on_menu` gets the clicked item's id.
    pub fn create(
        app: &AppHandle<R>,
        model: &MenuModel,
        state: TrayState,
        variant: IconVariant,
        tooltip: &str,
        on_menu: impl Fn(&AppHandle<R>, &str) + Send + Sync + 'static,
    ) -> tauri::Result<Self> {
        let (menu, items) = build_menu(app, &model.entries)?;
        let icon = TrayIconBuilder::with_id(TRAY_ID)
            .icon(Image::from_bytes(icon_png(state, variant))?)
            .icon_as_template(variant == IconVariant::Template)
            .tooltip(tooltip)
            .title(if cfg!(target_os = "macos") {
                ""
            } else {
                "Wegent Device"
            })
            .menu(&menu)
            .show_menu_on_left_click(true)
            .on_menu_event(move |app, event| on_menu(app, event.id().as_ref()))
            .build(app)?;
        Ok(Self {
            icon,
            items,
            shape: model.shape(),
            last: Some(model.clone()),
            look: Some((state, variant)),
            tooltip: tooltip.to_owned(),
        })
    }

    /// Forget what was applied, so the next [`Self::apply`] writes every item again (after a
    /// click the host has toggled a check mark on its own).
    pub fn invalidate(&mut self) {
        self.last = None;
    }

    pub fn apply(
        &mut self,
        app: &AppHandle<R>,
        model: &MenuModel,
        state: TrayState,
        variant: IconVariant,
        tooltip: &str,
    ) -> tauri::Result<()> {
        if self.look != Some((state, variant)) {
            self.icon
                .set_icon(Some(Image::from_bytes(icon_png(state, variant))?))?;
            self.icon
                .set_icon_as_template(variant == IconVariant::Template)?;
            self.look = Some((state, variant));
        }
        if self.tooltip != tooltip {
            self.icon.set_tooltip(Some(tooltip))?;
            self.tooltip = tooltip.to_owned();
        }
        if self.last.as_ref() == Some(model) {
            return Ok(());
        }
        let shape = model.shape();
        if shape != self.shape {
            let (menu, items) = build_menu(app, &model.entries)?;
            self.icon.set_menu(Some(menu))?;
            self.items = items;
            self.shape = shape;
            tracing::debug!("tray menu rebuilt");
        } else {
            let previous = self.last.take();
            update_in_place(
                &self.items,
                &model.entries,
                previous.as_ref().map(|m| &m.entries[..]),
            )?;
        }
        self.last = Some(model.clone());
        Ok(())
    }
}

type Built<R> = (Menu<R>, HashMap<String, MenuItemKind<R>>);

fn build_menu<R: Runtime>(app: &AppHandle<R>, entries: &[Entry]) -> tauri::Result<Built<R>> {
    let mut items = HashMap::new();
    let kinds = build_entries(app, entries, &mut items)?;
    let refs: Vec<&dyn IsMenuItem<R>> = kinds.iter().map(|k| k as &dyn IsMenuItem<R>).collect();
    Ok((Menu::with_items(app, &refs)?, items))
}

fn build_entries<R: Runtime>(
    app: &AppHandle<R>,
    entries: &[Entry],
    items: &mut HashMap<String, MenuItemKind<R>>,
) -> tauri::Result<Vec<MenuItemKind<R>>> {
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let kind = match entry {
            Entry::Item { id, text, enabled } => {
                MenuItemKind::MenuItem(MenuItem::with_id(app, id, text, *enabled, None::<&str>)?)
            }
            Entry::Check {
                id,
                text,
                enabled,
                checked,
            } => MenuItemKind::Check(CheckMenuItem::with_id(
                app,
                id,
                text,
                *enabled,
                *checked,
                None::<&str>,
            )?),
            Entry::Separator => MenuItemKind::Predefined(PredefinedMenuItem::separator(app)?),
            Entry::Submenu {
                id,
                text,
                enabled,
                children,
            } => {
                let kids = build_entries(app, children, items)?;
                let refs: Vec<&dyn IsMenuItem<R>> =
                    kids.iter().map(|k| k as &dyn IsMenuItem<R>).collect();
                MenuItemKind::Submenu(Submenu::with_id_and_items(app, id, text, *enabled, &refs)?)
            }
        };
        if let Some(id) = entry_id(entry) {
            items.insert(id.to_owned(), kind.clone());
        }
        out.push(kind);
    }
    Ok(out)
}

fn entry_id(entry: &Entry) -> Option<&str> {
    match entry {
        Entry::Item { id, .. } | Entry::Check { id, .. } | Entry::Submenu { id, .. } => Some(id),
        Entry::Separator => None,
    }
}

/// Same shape: write only what differs from `previous` (everything when it is unknown).
fn update_in_place<R: Runtime>(
    items: &HashMap<String, MenuItemKind<R>>,
    entries: &[Entry],
    previous: Option<&[Entry]>,
) -> tauri::Result<()> {
    for (i, entry) in entries.iter().enumerate() {
        let before = previous.and_then(|p| p.get(i));
        if before == Some(entry) {
            continue;
        }
        let Some(kind) = entry_id(entry).and_then(|id| items.get(id)) else {
            continue;
        };
        match (entry, kind) {
            (Entry::Item { text, enabled, .. }, MenuItemKind::MenuItem(item)) => {
                item.set_text(text)?;
                item.set_enabled(*enabled)?;
            }
            (
                Entry::Check {
                    text,
                    enabled,
                    checked,
                    ..
                },
                MenuItemKind::Check(item),
            ) => {
                item.set_text(text)?;
                item.set_enabled(*enabled)?;
                item.set_checked(*checked)?;
            }
            (
                Entry::Submenu {
                    text,
                    enabled,
                    children,
                    ..
                },
                MenuItemKind::Submenu(sub),
            ) => {
                sub.set_text(text)?;
                sub.set_enabled(*enabled)?;
                let prev_children = match before {
                    Some(Entry::Submenu { children, .. }) => Some(&children[..]),
                    _ => None,
                };
                update_in_place(items, children, prev_children)?;
            }
            _ => {}
        }
    }
    Ok(())
}
