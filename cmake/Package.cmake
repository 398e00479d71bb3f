# CPack: a Debian package (cpack -G DEB) of the library (static and shared), headers, the
# CMake package and pkg-config files, the tool and its man page, the Python module for the
# python3 the build used (installed as a Debian package would: /usr/lib/python3/dist-packages),
# the documentation and the bash completion. Dependencies come from dpkg-shlibdeps.
set(CPACK_PACKAGE_NAME bulkmap)
set(CPACK_PACKAGE_VENDOR "the bulkmap authors")
set(CPACK_PACKAGE_CONTACT "the bulkmap authors <bulkmap@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "map bulk data through aligned views, sliding windows and large-page sections")
set(CPACK_PACKAGE_DESCRIPTION
  "A C11 library (libbulkmap), a libuv pipeline library (bulkmap_uv), the bulkmap tool
(scan, load, cat, stat, ls, rm, bench, setup) and the bulkmap Python package.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/bulkmap")
# The Python module is built for one interpreter version (its SOABI).
if(BULKMAP_BUILD_PYTHON AND Python3_VERSION_MAJOR)
  math(EXPR _bm_next "${Python3_VERSION_MINOR} + 1")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "python3 (>= ${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}~), python3 (<< ${Python3_VERSION_MAJOR}.${_bm_next})")
  set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3-numpy, python3-dask, python3-distributed")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "bash-completion")
set(CPACK_SOURCE_IGNORE_FILES "/build/;/\\\\.git/")
include(CPack)
