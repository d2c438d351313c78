#!/usr/bin/python3
"""Screenshot of the tray menu as a panel shows it: reads the app's menu over D-Bus (the
com.canonical.dbusmenu layout a panel reads), renders it with GTK as an indicator panel does, opens
the submenus named on the command line, and takes an X screenshot. There is no panel under Xvfb;
this stands in for one.

  menu_shot.py OUT.png [SUBMENU_LABEL_PREFIX ...]

Run with Debian's /usr/bin/python3 (python3-gi, python3-dbus) inside the headless session.
"""
import os
import subprocess
import sys

import dbus
import gi

gi.require_version("Gtk", "3.0")
gi.require_version("Gdk", "3.0")
from gi.repository import Gdk, GLib, Gtk  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ci"))
import sni  # noqa: E402


def build(children):
    """A Gtk.Menu mirroring dbusmenu `children`; returns it and its (label, item) pairs."""
    menu, items = Gtk.Menu(), []
    for child in children:
        props = child["props"]
        label = props.get("label", "")
        if props.get("type") == "separator":
            item = Gtk.SeparatorMenuItem()
        elif props.get("toggle-type") == "checkmark":
            item = Gtk.CheckMenuItem.new_with_mnemonic(label)
            item.set_active(props.get("toggle-state") == 1)
        else:
            item = Gtk.MenuItem.new_with_mnemonic(label)
        item.set_sensitive(props.get("enabled", True))
        if child["children"]:
            sub, sub_items = build(child["children"])
            item.set_submenu(sub)
            item.sub_items = sub_items
        menu.append(item)
        items.append((label.replace("_", ""), item))
    menu.show_all()
    return menu, items


def main():
    out, path = sys.argv[1], sys.argv[2:]
    bus = dbus.SessionBus()
    items = sni.items(bus)
    if not items:
        print("menu_shot: no tray item registered", file=sys.stderr)
        return 1
    layout = sni.read_item(bus, items[-1])["menu"]
    menu, top = build(layout["children"])
    anchor = Gtk.Window(type=Gtk.WindowType.POPUP)
    anchor.move(20, 20)
    anchor.resize(1, 1)
    anchor.show()
    state = {"menu": menu, "items": top, "path": list(path), "rc": 0}

    def popup():
        menu.popup_at_widget(anchor, Gdk.Gravity.SOUTH_WEST, Gdk.Gravity.NORTH_WEST, None)
        GLib.timeout_add(400, open_next)
        return False

    def open_next():
        if not state["path"]:
            GLib.timeout_add(500, shoot)
            return False
        prefix = state["path"].pop(0)
        found = [item for label, item in state["items"] if label.startswith(prefix)]
        if not found or not found[0].get_submenu():
            print(f"menu_shot: no submenu starting with {prefix!r}", file=sys.stderr)
            state["rc"] = 1
            GLib.timeout_add(100, shoot)
            return False
        item = found[0]
        state["menu"].select_item(item)
        item.emit("activate")
        state["menu"], state["items"] = item.get_submenu(), item.sub_items
        GLib.timeout_add(500, open_next)
        return False

    def shoot():
        # The root window is black around the menus: trim it away.
        subprocess.run(["import", "-window", "root", "-trim", "+repage", out], check=False, capture_output=True)
        Gtk.main_quit()
        return False

    GLib.timeout_add(200, popup)
    GLib.timeout_add(15000, Gtk.main_quit)  # never hang a test run
    Gtk.main()
    return state["rc"] if os.path.exists(out) else 1


if __name__ == "__main__":
    sys.exit(main())
