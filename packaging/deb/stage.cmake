# CPack's pre-build script for the .deb (CPACK_PRE_BUILD_SCRIPTS, packaging/cpack.cmake): run on the staging
# directory, after CPack installed the project there and before it packs it. What only a Debian package
# wants, and `cmake --install` should not do:
#   - the system units in /lib/systemd/system, where Debian 12's packages put them (systemd's own among
#     them); the user units stay in /usr/lib/systemd/user, the sysusers file in /usr/lib/sysusers.d
#   - the binaries without the .comment and .note sections (CPack's strip keeps them; dh_strip does not)
#   - man pages gzipped (gzip -9n: no name or time stamp), and mpctl-tls(1) a link to mpctl(1)
#   - /usr/share/doc/mpctl/copyright and changelog.gz; lintian's overrides (deb/lintian-overrides says why)
#   - modes as dpkg wants them whatever the umask: directories 0755, files 0644, /usr/bin/* and
#     /usr/libexec/mpctl/* (mpctl-slurm-job) 0755
if(NOT CPACK_GENERATOR STREQUAL "DEB")
  return()  # another generator (cpack -G TGZ): the tree as `cmake --install` lays it out
endif()
set(root "${CPACK_TEMPORARY_DIRECTORY}")
set(deb "${CPACK_MPCTL_DEB_DIR}")
if(NOT IS_DIRECTORY "${root}/usr/bin" OR NOT IS_DIRECTORY "${deb}")
  message(FATAL_ERROR "stage.cmake: no staged /usr/bin in '${root}', or no '${deb}'")
endif()
find_program(MPCTL_GZIP gzip REQUIRED)

function(gzip_n file)
  execute_process(COMMAND ${MPCTL_GZIP} -9nf "${file}" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "gzip -9n ${file}: ${status}")
  endif()
endfunction()

# System units: usr/lib/systemd/system -> lib/systemd/system.
if(IS_DIRECTORY "${root}/usr/lib/systemd/system")
  file(MAKE_DIRECTORY "${root}/lib/systemd")
  file(RENAME "${root}/usr/lib/systemd/system" "${root}/lib/systemd/system")
endif()

# Binaries: CPACK_STRIP_FILES stripped their symbols already.
find_program(MPCTL_STRIP strip REQUIRED)
file(GLOB binaries "${root}/usr/bin/*" "${root}/usr/libexec/mpctl/*")
foreach(binary IN LISTS binaries)
  execute_process(COMMAND ${MPCTL_STRIP} --remove-section=.comment --remove-section=.note "${binary}"
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "strip ${binary}: ${status}")
  endif()
endforeach()

# Man pages.
file(GLOB pages "${root}/usr/share/man/man*/*.[1-9]")
foreach(page IN LISTS pages)
  gzip_n("${page}")
endforeach()
if(EXISTS "${root}/usr/bin/mpctl-tls" AND EXISTS "${root}/usr/share/man/man1/mpctl.1.gz")
  file(CREATE_LINK mpctl.1.gz "${root}/usr/share/man/man1/mpctl-tls.1.gz" SYMBOLIC)
endif()

# /usr/share/doc/mpctl: copyright, and a changelog naming this version (the history is the commit log).
set(doc "${root}/usr/share/doc/mpctl")
file(MAKE_DIRECTORY "${doc}")
file(COPY_FILE "${deb}/copyright" "${doc}/copyright")
string(TIMESTAMP date "%a, %d %b %Y %H:%M:%S +0000" UTC)  # SOURCE_DATE_EPOCH, when set
file(WRITE "${doc}/changelog"
"mpctl (${CPACK_PACKAGE_VERSION}) unstable; urgency=medium

  * Package of mpctl ${CPACK_PACKAGE_VERSION}, built with CPack from the mpctl source tree
    (packaging/cpack.cmake). What changed is in the source tree's commit log.

 -- ${CPACK_MPCTL_MAINTAINER}  ${date}
")
gzip_n("${doc}/changelog")
file(MAKE_DIRECTORY "${root}/usr/share/lintian/overrides")
file(COPY_FILE "${deb}/lintian-overrides" "${root}/usr/share/lintian/overrides/mpctl")

# Modes.
file(GLOB_RECURSE entries LIST_DIRECTORIES true "${root}/*")
foreach(entry IN LISTS entries)
  get_filename_component(parent "${entry}" DIRECTORY)
  if(IS_SYMLINK "${entry}")
    continue()
  elseif(IS_DIRECTORY "${entry}")
    file(CHMOD "${entry}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                      WORLD_READ WORLD_EXECUTE)
  elseif(parent STREQUAL "${root}/usr/bin" OR parent STREQUAL "${root}/usr/libexec/mpctl")
    file(CHMOD "${entry}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                                      WORLD_READ WORLD_EXECUTE)
  else()
    file(CHMOD "${entry}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
endforeach()
