# Finds the codec libraries voxcore links and defines imported targets voxcore_codec::<name>.
# Used at build time and again by the installed voxcoreConfig.cmake.
set(_voxcore_codecs zstd lz4 blosc deflate z isal jpeg)
set(_voxcore_headers_zstd zstd.h)
set(_voxcore_headers_lz4 lz4.h)
set(_voxcore_headers_blosc blosc.h)
set(_voxcore_headers_deflate libdeflate.h)
set(_voxcore_headers_z zlib.h)
set(_voxcore_headers_isal isa-l/igzip_lib.h)
set(_voxcore_headers_jpeg jpeglib.h)  # libjpeg-turbo's libjpeg API
set(_voxcore_missing "")
foreach(_lib IN LISTS _voxcore_codecs)
  if(TARGET voxcore_codec::${_lib})
    continue()
  endif()
  find_path(VOXCORE_${_lib}_INCLUDE_DIR NAMES ${_voxcore_headers_${_lib}})
  find_library(VOXCORE_${_lib}_LIBRARY NAMES ${_lib} lib${_lib})
  if(VOXCORE_${_lib}_INCLUDE_DIR AND VOXCORE_${_lib}_LIBRARY)
    add_library(voxcore_codec::${_lib} UNKNOWN IMPORTED)
    set_target_properties(voxcore_codec::${_lib} PROPERTIES
      IMPORTED_LOCATION "${VOXCORE_${_lib}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${VOXCORE_${_lib}_INCLUDE_DIR}")
  else()
    list(APPEND _voxcore_missing ${_lib})
  endif()
endforeach()
if(_voxcore_missing)
  message(FATAL_ERROR
    "voxcore: codec libraries not found: ${_voxcore_missing}. On Debian/Ubuntu install them with:\n"
    "  apt-get install -y libzstd-dev liblz4-dev libblosc-dev libdeflate-dev libisal-dev zlib1g-dev libjpeg-dev")
endif()
