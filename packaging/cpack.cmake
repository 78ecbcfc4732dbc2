# The Debian package, built by CPack from what `cmake --install` puts (the install rules of the root
# CMakeLists.txt and cli/CMakeLists.txt), laid out as a Debian 12 package:
#
#   cmake --build build -j2 && (cd build && cpack -G DEB)      # -> build/mpctl_VERSION_ARCH.deb
#   cpack --config build/CPackConfig.cmake -B DIR              # the same, written to DIR
#
# CPack builds the tree (the Makefiles' `preinstall`, that is `all`) before it installs it; tests/e2e/
# test_package.py adds -D CPACK_CMAKE_GENERATOR=Ninja to skip that and pack what is built.
#
# /usr/bin/mpctl, mpctld, mpctl-tls (stripped); the system units in /lib/systemd/system (where Debian 12's
# own packages put them, and where ExecStart=/usr/bin/mpctld holds), the user units in /usr/lib/systemd/user,
# /usr/lib/sysusers.d/mpctl.conf; the completions; mpctl(1) and mpctld(8), gzipped; the Python package in
# /usr/lib/python3/dist-packages/mpctl; /usr/share/doc/mpctl (PROTOCOL.md, copyright, changelog.gz). The
# moves and additions that only a Debian package wants are made in the staging directory by
# deb/stage.cmake; the maintainer scripts are deb/postinst, deb/prerm and deb/postrm.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mpctl)
# What `mpctl --version` and `mpctld --version` print (MPCTL_VERSION is PROJECT_VERSION there too).
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "mpctl maintainers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "process supervisor: futures, worker pools and locks for the shell")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"mpctld is a daemon that runs the commands it is given as tasks, and mpctl is
its command line: every submission is a future (submit, wait, result, logs,
cancel), with worker pools, retries, timeouts, dependencies and a durable
journal. It also holds locks that flock(1) sees, shared memory segments,
queues and dictionaries, and serves remote clients over TLS 1.3.
.
The package has both programs, systemd units for a system daemon (socket
activated, for root and the group mpctl) and for per-user daemons, man pages,
shell completions for bash, zsh and fish, and the Python package mpctl
(concurrent.futures executors, FileLock, Queue and Dict on the daemon).")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The binaries without their debugging information (lintian: unstripped-binary-or-object).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(MPCTL_DEB_MAINTAINER "mpctl maintainers <maintainers@mpctl.invalid>" CACHE STRING
    "The Maintainer field of the Debian package (cpack -G DEB)")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MPCTL_DEB_MAINTAINER}")
# Depends: the shared libraries mpctld links (dpkg-shlibdeps; mpctl and mpctl-tls are static), and adduser,
# which postinst runs where systemd-sysusers is missing. python3 is for the Python package and warm Python
# pools only: recommended.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "bash-completion")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_CURRENT_LIST_DIR}/deb/postinst ${CMAKE_CURRENT_LIST_DIR}/deb/prerm
                                       ${CMAKE_CURRENT_LIST_DIR}/deb/postrm)
# 0755 for the maintainer scripts, 0644 for the other control files, whatever the checkout's modes.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/deb/stage.cmake)
# For deb/stage.cmake (CPack passes CPACK_* variables on to its scripts).
set(CPACK_MPCTL_DEB_DIR ${CMAKE_CURRENT_LIST_DIR}/deb)
set(CPACK_MPCTL_MAINTAINER "${MPCTL_DEB_MAINTAINER}")
include(CPack)
