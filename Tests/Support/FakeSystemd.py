'''FAKE systemd for certreload's tests: a python-dbusmock template, not systemd.

Claims org.freedesktop.systemd1 on the bus it is started on and implements just what
certreload calls on /org/freedesktop/systemd1 (org.freedesktop.systemd1.Manager):
Subscribe, ReloadUnit, RestartUnit, ReloadOrRestartUnit, GetUnit; and MainPID
(org.freedesktop.systemd1.Service) on each unit's object.

Parameters (JSON, `-p`): {"units": {"NAME": {"result": R, "pid": N}}}
  R: the JobRemoved result to emit ("done", "failed", ...), or "never" to emit none.
  N: the unit's MainPID (0 when not given).
Unknown units raise org.freedesktop.systemd1.NoSuchUnit. Every call is logged by dbusmock
(`-l FILE`), e.g. `1700000000.000 ReloadUnit "ok.service" "replace"`.

Start: python3 -m dbusmock --system -l LOG -t Tests/Support/FakeSystemd.py -p '{...}'
with DBUS_SYSTEM_BUS_ADDRESS pointing at a private dbus-daemon.
'''

import dbus
from gi.repository import GLib

from dbusmock import mockobject

BUS_NAME = 'org.freedesktop.systemd1'
MAIN_OBJ = '/org/freedesktop/systemd1'
MAIN_IFACE = 'org.freedesktop.systemd1.Manager'
SERVICE_IFACE = 'org.freedesktop.systemd1.Service'
UNIT_IFACE = 'org.freedesktop.systemd1.Unit'
SYSTEM_BUS = True


def unit_path(name):
    escaped = ''.join(c if c.isalnum() else '_%02x' % ord(c) for c in name)
    return f'{MAIN_OBJ}/unit/{escaped}'


def no_such_unit(name):
    return dbus.exceptions.DBusException(
        f'Unit {name} not found.', name='org.freedesktop.systemd1.NoSuchUnit')


def start_job(mock, name):
    name = str(name)
    unit = mock.fake_units.get(name)
    if unit is None:
        raise no_such_unit(name)
    mock.next_job_id += 1
    job_id = mock.next_job_id
    job_path = f'{MAIN_OBJ}/job/{job_id}'
    result = unit.get('result', 'done')

    def finish():
        mock.EmitSignal(MAIN_IFACE, 'JobNew', 'uos', [job_id, job_path, name])
        if result != 'never':
            mock.EmitSignal(MAIN_IFACE, 'JobRemoved', 'uoss', [job_id, job_path, name, result])
        return False

    # After the method's reply, as systemd does for a job that ends at once.
    GLib.idle_add(finish)
    return dbus.ObjectPath(job_path)


def get_unit(mock, name):
    name = str(name)
    if name not in mock.fake_units:
        raise dbus.exceptions.DBusException(
            f'Unit {name} not loaded.', name='org.freedesktop.systemd1.NoSuchUnit')
    return dbus.ObjectPath(unit_path(name))


def load(mock, parameters):
    mock.next_job_id = 0
    mock.fake_units = dict(parameters.get('units', {}))
    mock.AddProperties(MAIN_IFACE, {'Version': 'fake-for-certreload-tests'})
    mock.AddMethod(MAIN_IFACE, 'Subscribe', '', '', '')
    for method in ('ReloadUnit', 'RestartUnit', 'ReloadOrRestartUnit'):
        mock.AddMethod(MAIN_IFACE, method, 'ss', 'o', lambda self, name, _mode: start_job(self, name))
    mock.AddMethod(MAIN_IFACE, 'GetUnit', 's', 'o', lambda self, name: get_unit(self, name))
    for name, unit in mock.fake_units.items():
        mock.AddObject(unit_path(name), UNIT_IFACE, {'Id': name}, [])
        mockobject.objects[unit_path(name)].AddProperties(
            SERVICE_IFACE, {'MainPID': dbus.UInt32(unit.get('pid', 0))})
