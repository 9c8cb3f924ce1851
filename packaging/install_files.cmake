# Runs at install time (cmake --install, cpack), when the real prefix is known: writes the systemd
# unit and the config with the installed paths filled in. Inputs: SRC (source dir), BIN (build dir).
set(prefix "$ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}")
set(BULKMAIL_BINDIR "${CMAKE_INSTALL_PREFIX}/bin")
set(BULKMAIL_CONFDIR "/etc/bulkmail")
configure_file("${SRC}/systemd/bulkmaild.service.in" "${BIN}/packaging/bulkmaild.service" @ONLY)

# The example config, pointed at the Debian layout: the database in the state directory systemd
# gives the daemon, the templates where they are installed.
file(READ "${SRC}/config/bulkmail.yaml" yaml)
string(REPLACE "database: bulkmail.db" "database: /var/lib/bulkmail/bulkmail.db" yaml "${yaml}")
string(REPLACE "templates: ../templates" "templates: ${CMAKE_INSTALL_PREFIX}/share/bulkmail/templates"
       yaml "${yaml}")
file(WRITE "${BIN}/packaging/bulkmail.yaml" "${yaml}")
