# Toolchain for the `linux32` preset: i386 code from the host's gcc with -m32 (Debian's
# gcc-multilib), run natively by the x86-64 kernel. size_t and pointers are 32 bits, so the
# address space is 4 GiB at most (3 GiB on a 32-bit kernel): what the window cursor is for.
# libuv and Check come from Debian's source packages built by cmake/windeps.sh with this
# file into build/linux32deps (cmake/Linux32Deps.cmake); xxHash is header-only (the host's).
set(CMAKE_C_FLAGS_INIT "-m32")
set(CMAKE_CXX_FLAGS_INIT "-m32")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-m32")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-m32")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-m32")
# Not CMAKE_SYSTEM_NAME: the build is native Linux (no emulator, pkg-config works), only
# of another word size. pkg-config is pointed at the i386 builds alone.
if(NOT BULKMAP_LINUX32DEPS)
  if(DEFINED ENV{BULKMAP_LINUX32DEPS})
    set(BULKMAP_LINUX32DEPS "$ENV{BULKMAP_LINUX32DEPS}")
  else()
    get_filename_component(BULKMAP_LINUX32DEPS "${CMAKE_CURRENT_LIST_DIR}/../build/linux32deps" ABSOLUTE)
  endif()
endif()
set(ENV{PKG_CONFIG_LIBDIR} "${BULKMAP_LINUX32DEPS}/lib/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
list(PREPEND CMAKE_PREFIX_PATH "${BULKMAP_LINUX32DEPS}")
